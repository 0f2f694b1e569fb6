"""The network model: simulated seconds of messages and local updates, deadlines, and the emulator that holds
messages for their modelled time (``network.*`` settings)."""
