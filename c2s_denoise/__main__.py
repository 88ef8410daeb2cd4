"""``python -m c2s_denoise``: the ``c2s-denoise`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
