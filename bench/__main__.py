import sys

if sys.argv[1:2] == ["show"]:
    from bench import show

    sys.exit(show.cli(sys.argv[2:]))
if sys.argv[1:2] == ["census"]:
    from bench import census

    sys.exit(census.cli(sys.argv[2:]))
if sys.argv[1:2] == ["late"]:
    from bench import late

    sys.exit(late.cli(sys.argv[2:]))

from bench.run import cli

sys.exit(cli())
