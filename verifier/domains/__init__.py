"""Abstract domains of the verifier: tnum, intervals, arithmetic, comparisons, values, state.

Nothing here knows about instructions or programs.
"""
