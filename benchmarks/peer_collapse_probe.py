"""Probe of the 8000-step collapse of Neighbor2Neighbor / Noise2Void (issue 20).

Trains a peer exactly as ``compare.py`` does (``make_peer_network`` + ``train_peer``, MNI152
training slices, Gaussian sigma 25/255, train seed 1) and logs, every ``--every`` steps: the
mean loss of the last ``--every`` steps, the learning rate, the gradient norm before clipping
(mean and max over the window), the RMS of the backbone's contribution ``c_out F`` relative to
the noise level (0 = the network outputs ``c_skip y``), the head's pre-activation statistics,
and the brain PSNR of the *training* network on the held-out slices. The run can be stopped
early (``--stop``) while the schedule is laid out over ``--max-iter`` steps.

    OMP_NUM_THREADS=1 python benchmarks/peer_collapse_probe.py --peer neighbor2neighbor --stop 2500
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import c2s_denoise.engine.trainer as trainer_module
from bench_data import add_noise, load_mni152_axial
from peers import denoise_peer, make_peer, make_peer_network, train_peer
from scoring import metrics


class C2SStep:
    """C2S's GDSM step (the estimator's defaults: ``"added"`` schedule, ``tau_max=1.5``) as a
    peer-like loss, so that it trains in :func:`train_peer` exactly like the peers (control)."""

    name = "c2s"
    needs_clean = False
    identity_skip = True
    stationary = True

    def __init__(self) -> None:
        from c2s_denoise.engine import GDSMLoss, GDSMStep, NoiseSchedule

        self.step = GDSMStep(NoiseSchedule("added", 1.5), GDSMLoss())

    def __call__(self, network, patches, sigma_data, generator, progress):
        return self.step(network, patches, sigma_data, generator, progress)

    def estimate(self, network, noisy, sigma, generator):
        return network(noisy, sigma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", default="neighbor2neighbor")
    parser.add_argument("--peer-kwargs", default="{}", help="JSON keyword arguments of the peer loss")
    parser.add_argument("--max-iter", type=int, default=8000)
    parser.add_argument("--stop", type=int, default=None, help="stop after this many steps (schedule of --max-iter)")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--clip", type=float, default=1.0, help="<= 0: no clipping")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-fused", action="store_true", help="AdamW's per-tensor loop, not the fused kernel")
    parser.add_argument("--slices", type=int, default=30, help="training slices (the first n)")
    parser.add_argument("--json", default=None, help="write the log here")
    parser.add_argument(
        "--detail", nargs=2, type=int, default=None, help="also log every step in [FROM, TO): weights and Adam state"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    split = load_mni152_axial(crop_margin=4)
    sigma = 25 / 255
    noisy_train = add_noise(split.train, sigma, "gaussian", seed=1)[: args.slices]
    noisy_test = add_noise(split.test, sigma, "gaussian", seed=2)
    if args.peer == "c2s":  # control: C2S's loss and noise-conditioned network in the peers' trainer
        from c2s_denoise.engine import NoiseConditionedUNet

        loss = C2SStep()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            network = NoiseConditionedUNet(width=16, depth=3)
    else:
        loss = make_peer(args.peer, **json.loads(args.peer_kwargs))
        network = make_peer_network(seed=args.seed, skip=loss.identity_skip)
    probe_input = torch.from_numpy(noisy_test[:2, None].astype(np.float32))

    grad_norms: list[float] = []
    original = trainer_module.gradient_norm

    def gradient_norm(net, grad_clip):
        grad_norms.append(original(net, grad_clip))  # the norm before clipping
        return grad_norms[-1]

    trainer_module.gradient_norm = gradient_norm
    if args.no_fused:

        def make_optimizer(net, config, device):
            kwargs = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
            return torch.optim.AdamW(list(net.parameters()), fused=False, foreach=False, **kwargs)

        trainer_module.make_optimizer = make_optimizer
    head_input: dict[str, torch.Tensor] = {}
    inner = network if hasattr(network, "head") else network.network
    inner.head.register_forward_hook(lambda module, inputs, output: head_input.__setitem__("x", inputs[0].detach()))

    log: list[dict] = []
    losses: list[float] = []
    lrs: list[float] = []
    start = time.perf_counter()
    optimiser_lr = {}

    # the learning rate of each step: wrap the scheduler's step to read the optimiser
    original_lambda = torch.optim.lr_scheduler.LambdaLR.step

    def step_and_record(self, *a, **k):
        optimiser_lr["lr"] = self.optimizer.param_groups[0]["lr"]
        optimiser_lr["optimizer"] = self.optimizer
        return original_lambda(self, *a, **k)

    torch.optim.lr_scheduler.LambdaLR.step = step_and_record

    names = {id(p): n for n, p in network.named_parameters()}

    def detail(step: int, value: float) -> None:
        optimizer = optimiser_lr["optimizer"]
        largest = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                if "exp_avg" not in state:
                    continue
                ratio = state["exp_avg"].abs() / (state["exp_avg_sq"].sqrt() + 1e-8)
                largest.append((float(p.detach().abs().max()), names[id(p)], float(ratio.max())))
        largest.sort(reverse=True)
        row = {
            "step": step + 1,
            "loss": value,
            "grad_norm": grad_norms[-1],
            "head_preact_min": float(head_input["x"].min()),
            "head_preact_max": float(head_input["x"].max()),
            "largest_weights": [(round(w, 3), n, round(r, 2)) for w, n, r in largest[:3]],
        }
        print(json.dumps(row), flush=True)

    def callback(step: int, value: float) -> None:
        losses.append(value)
        lrs.append(optimiser_lr.get("lr", float("nan")))
        if args.detail is not None and args.detail[0] <= step + 1 < args.detail[1]:
            detail(step, value)
        if (step + 1) % args.every == 0:
            was_training = network.training
            network.eval()
            with torch.no_grad():
                sig = torch.full((probe_input.shape[0],), sigma)
                out = network(probe_input, sig)
                if hasattr(network, "head"):  # with skip: c_out F relative to sigma
                    var = network.signal_std**2 + sigma**2
                    c_skip = network.signal_std**2 / var
                    residual_rms = float((out - c_skip * probe_input).square().mean().sqrt()) / sigma
                else:
                    residual_rms = float((out - probe_input).square().mean().sqrt()) / sigma
                head = head_input["x"]
            network.train(was_training)
            window = grad_norms[-args.every :]
            estimate = out[:, 0].numpy()
            score = metrics(estimate, split.test[:2], split.test_mask[:2])
            row = {
                "step": step + 1,
                "loss": float(np.mean(losses[-args.every :])),
                "lr": lrs[-1],
                "grad_norm_mean": float(np.mean(window)),
                "grad_norm_max": float(np.max(window)),
                "out_minus_skip_rms_over_sigma": residual_rms,
                "head_preact_mean": float(head.mean()),
                "head_preact_max": float(head.max()),
                "head_preact_frac_gt_minus5": float((head > -5).float().mean()),
                "psnr_brain_train_net_2slices": score["psnr_brain"],
                "seconds": time.perf_counter() - start,
            }
            log.append(row)
            print(json.dumps(row), flush=True)
        if args.stop is not None and step + 1 >= args.stop:
            raise KeyboardInterrupt

    result = train_peer(
        loss,
        network,
        noisy_train,
        sigma,
        max_iter=args.max_iter,
        learning_rate=args.lr,
        ema_decay=args.ema,
        grad_clip=args.clip if args.clip > 0 else None,
        precision=args.precision,
        seed=args.seed,
        callback=callback,
    )
    out = np.asarray(denoise_peer(loss, result.network, noisy_test, sigma, seed=args.seed))
    final = metrics(out, split.test, split.test_mask)
    summary = {
        "args": vars(args),
        "n_iter": result.n_iter,
        "rollbacks": result.rollbacks,
        "skipped": result.skipped_steps,
        "ema_psnr_brain_6slices": final["psnr_brain"],
        "noisy_psnr_brain_6slices": metrics(noisy_test, split.test, split.test_mask)["psnr_brain"],
    }
    print(json.dumps(summary), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"summary": summary, "log": log}, handle, indent=1)
    print(f"{time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
