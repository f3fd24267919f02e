"""`python -m api.cli_main ...`: the `vitrine` command without relying on the console script."""

from api.cli import main

if __name__ == "__main__":
    main()
