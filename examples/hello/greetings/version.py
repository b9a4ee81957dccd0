# The deployed version marker. Tests rewrite this line (e.g. with sed) to v2.
VERSION = "v1"
