"""`pairlib`: `pairlib score ...` is the batch scoring job (pairlib.serve); every other command runs the study's
notebooks (pairlib.study.run)."""
import sys


def main() -> int:
    if sys.argv[1:2] == ["score"]:
        from pairlib.serve.cli import main as score
        return score(sys.argv[2:])
    from pairlib.study.run import main as study
    return study()


if __name__ == "__main__":
    sys.exit(main())
