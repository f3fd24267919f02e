"""`python -m cli ...`: the `vitrine` command without relying on the console script."""

from cli.main import main

if __name__ == "__main__":
    main()
