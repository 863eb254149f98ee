"""Endpoints the Inngest SDKs and their test tooling call on the server (protocol §7.3, §12, §13).

`routes` lists them; `reads` holds what they read from the store, as the SDKs see it.
"""
