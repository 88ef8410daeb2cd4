"""``python -m c2s_denoise``: the ``c2s-denoise`` command line."""

from .cli.commands import main

if __name__ == "__main__":
    main()
