"""`pairlib`: `pairlib score ...` is the batch scoring job (pairlib.serve); `pairlib train` and `pairlib evaluate`
put a method on the user's own data (pairlib.apply); every other command runs the study's notebooks
(pairlib.study.run)."""
import sys


def main() -> int:
    if sys.argv[1:2] == ["score"]:
        from pairlib.serve.cli import main as score
        return score(sys.argv[2:])
    if sys.argv[1:2] in (["train"], ["evaluate"]):
        from pairlib.apply.cli import main as apply
        return apply(sys.argv[1:])
    from pairlib.study.run import main as study
    return study()


if __name__ == "__main__":
    sys.exit(main())
