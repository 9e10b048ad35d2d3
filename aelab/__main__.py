import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself loads (its first tenth of a second)
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
