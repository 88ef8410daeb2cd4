"""Self-supervised peer methods of the benchmark, trained like C2S on the same network and budget.

Each peer is a *loss* (a :class:`~peers.base.PeerLoss`, without parameters) that is a training
step of the engine, :data:`c2s_denoise.engine.StepLoss`, like C2S's
:class:`~c2s_denoise.engine.GDSMStep`: ``loss(network, patches, sigma_data, generator,
progress)`` is the scalar loss of a batch of noisy training patches; it also knows how its
trained network is used at inference (:meth:`~peers.base.PeerLoss.estimate`).
:func:`train_peer` passes the peer straight to :func:`c2s_denoise.engine.train_network` (the
recipe of :func:`c2s_denoise.engine.train_gdsm`), and :func:`denoise_peer` applies the EMA
network through :func:`~c2s_denoise.engine.denoise_images`.

Modules
-------
:mod:`peers.base`
    :class:`PeerLoss`, the shared interface, and the helpers of the losses.
:mod:`peers.blind_spot`
    Blind-spot losses: ``Noise2SelfLoss`` (Batson & Royer, ICML 2019) and ``Noise2VoidLoss``
    (Krull, Buchholz & Jug, CVPR 2019).
:mod:`peers.paired`
    Recorrupted pairs: ``R2RLoss`` (Pang et al., CVPR 2021) and ``Noisier2NoiseLoss`` (Moran et
    al., CVPR 2020; the GDSM special case ``sigma_tg = 0``, fixed ``tau``).
:mod:`peers.neighbor2neighbor`
    ``Neighbor2NeighborLoss`` (Huang et al., CVPR 2021) and its sub-sampler.
:mod:`peers.supervised`
    ``Noise2CleanLoss``, the supervised upper bound ``||f(y) - x||^2``.
:mod:`peers.training`
    :data:`PEERS`, :func:`make_peer`, :func:`make_peer_network`, :func:`train_peer`,
    :func:`denoise_peer`.

Network
-------
All peers train :class:`c2s_denoise.engine.NoiseConditionedUNet` with
``noise_conditioning=False`` (see :func:`make_peer_network`), i.e. the C2S U-Net without the
noise-level embedding (the plain U-Net of the C2S paper's conditioning ablation): the peers
see one fixed noise level, so a plain U-Net is their standard network. The network is always called as
``network(x, sigma_data)``, with the data noise level of each image, in training and at
inference, whatever noise the peer's input carries: without conditioning ``sigma`` only sets the
network's EDM preconditioning constants (``c_in``, ``c_skip``, ``c_out``), so each peer is a
plain U-Net with a fixed input/output scaling and the same skip connection as C2S. Peers that
do not use the noise level in their loss (Noise2Self, Noise2Void, Neighbor2Neighbor,
Noise2Clean) only need a rough ``sigma``, e.g. an estimate; R2R and Noisier2Noise need it right.
Noise2Self (``identity_skip`` False) trains the same U-Net
*without* that skip connection (:class:`~peers.training.UNetWithoutSkip`, via
``make_peer_network(skip=loss.identity_skip)``): with it (``c_skip`` about 0.96 at
``sigma = 0.1``) the masked pixel's replacement reaches the output directly and Noise2Self's
training stalls at the local mean of the input (issue 13). Noise2Self's interpolating masker
also makes ``f(y)`` unreliable (see :class:`~peers.blind_spot.BlindSpotLoss`), hence its
J-invariant inference by default. Noise2Void keeps the skip connection: its replacement, one
random neighbour, is no solution to stall at, and it trains as well with it as without.

Same budget means the same steps, batch and patch size; the cost of a step still differs
(Neighbor2Neighbor adds a no-grad pass on the full patch and trains on half-size sub-images),
and so does inference (R2R and Noisier2Noise average ``n_samples = 8`` passes, Noise2Self's
J-invariant reconstruction takes 16): time them.

All random draws (patches, masks, pairs, noise) come from one CPU ``torch.Generator`` seeded by
``seed``: a run is deterministic for a given seed and initial network on a given machine.
The peers are single-contrast (one input channel, as in their papers).
"""

from .base import PeerLoss
from .blind_spot import BlindSpotLoss, Noise2SelfLoss, Noise2VoidLoss, blind_spot_mask
from .neighbor2neighbor import Neighbor2NeighborLoss, neighbor_pair_indices, neighbor_subsample
from .paired import Noisier2NoiseLoss, R2RLoss
from .supervised import Noise2CleanLoss
from .training import PEERS, UNetWithoutSkip, denoise_peer, make_peer, make_peer_network, train_peer

__all__ = [
    "PEERS",
    "BlindSpotLoss",
    "Neighbor2NeighborLoss",
    "Noise2CleanLoss",
    "Noise2SelfLoss",
    "Noise2VoidLoss",
    "Noisier2NoiseLoss",
    "PeerLoss",
    "R2RLoss",
    "UNetWithoutSkip",
    "blind_spot_mask",
    "denoise_peer",
    "make_peer",
    "make_peer_network",
    "neighbor_pair_indices",
    "neighbor_subsample",
    "train_peer",
]
