"""The service layer: what each operation means (policy, quota, state machine), called explicitly."""
