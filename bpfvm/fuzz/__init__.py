"""The verifier fuzzer: generator, mutator, oracles, reducer, campaign."""
