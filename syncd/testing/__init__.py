"""Test support shipped with syncd: the in-memory connector, fake app servers and the conformance kit."""
