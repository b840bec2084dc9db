import sys

if sys.argv[1:2] == ["show"]:
    from bench import show

    sys.exit(show.cli(sys.argv[2:]))

from bench.run import cli

sys.exit(cli())
