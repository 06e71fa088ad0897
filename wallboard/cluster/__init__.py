"""Several nodes on one Redis stream: source leases and the node's role.

Owns the lease that lets one node at a time run a connecting source (`lease`). May import
`wallboard.kit` and the layers below it; the server wires it up.
"""
