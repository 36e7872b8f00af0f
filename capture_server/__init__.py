"""The LAN server: HTTP API, mDNS, pairing, resumable uploads, live RGB-D, AR Quick Look sharing."""
