"""The configuration: the settings model, the file reader, cross-section checks, the demo.

Owns what a config file may say (`settings`), how it is read (`file`: size, encoding, aliases),
board and tile definitions (`boards`), names one section gives another (`check`), window names
(`windows`) and the embedded demo (`demo`, `demo.yaml`). May import `wallboard.model` and
`wallboard.base`; never the layers that use the settings.
"""
