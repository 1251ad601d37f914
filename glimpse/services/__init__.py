"""The service layer: what each operation means (policy, quota, state machine).

Service functions are called explicitly by the handlers; nothing is wrapped or proxied.
"""
