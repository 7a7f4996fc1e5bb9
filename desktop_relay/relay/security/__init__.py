"""Secrets and trust: the pairing token, the stream-key store, the local certificate
authority and private (0600/0700) files."""
