"""Demo ledger state for `make run`: integrate what the other demos queued, then sign."""

from ledger.selectors import ledger_tree_size
from ledger.services import checkpoint_create, ledger_integrate


def seed(stdout) -> None:
    while ledger_integrate():
        pass
    checkpoint, created = checkpoint_create()
    verb = "signed" if created else "already signed"
    stdout.write(
        f"Ledger: {ledger_tree_size()} entries; checkpoint at size {checkpoint.size} {verb}."
    )
