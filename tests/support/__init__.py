"""Test support: databases, in-process and real-server clients."""
