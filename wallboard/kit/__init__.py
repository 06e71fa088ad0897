"""The plugin kit: the published API for source plugins, bundled and third-party alike.

Owns the source base classes and their supervised runtime (`source`), the hook
specifications, rate limiting, webhook signatures, HTTP helpers for webhook-fed sources,
the contract test suite (`testing`) and the `new-plugin` templates (`scaffold`). A plugin
imports only this package and `wallboard.model` (checked in CI). May import the layers below
it (`ingest` and down); never the server.
"""
