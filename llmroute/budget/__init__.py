"""The budget (SPEC §6): windows, fast spend totals from the ledger, reservations that make
overshooting a limit impossible, and alerts. The engine talks to `guard.BudgetGuard`."""
