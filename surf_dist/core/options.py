"""The names the math accepts for its options, without torch (the CLI validates configs without importing it)."""

OUTPUTS = ("relu", "linear")  # σ of the paper's local network
NORMALISATIONS = ("none", "agent-batch")  # of the local network's layers
INITS = ("default", "paper")  # of the local network's parameters
TAP_INITS = ("average", "paper")  # of the filter taps
VARIANTS = ("decentralized", "star")  # U-DGD's form (eq. 11 or eq. 13)
FORMS = ("ratio", "difference")  # of the descent constraints
SEMANTICS = ("zero", "stale")  # what neighbours use for a silent agent
