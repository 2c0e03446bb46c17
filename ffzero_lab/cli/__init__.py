"""The ``ffzero-lab`` command line: one module per command group, registered by :mod:`.app`,
shared options and the one-line failure in :mod:`.common`. Only options and printing; the work
is in the rooms below.
"""
