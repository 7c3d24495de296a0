"""The experiments: one module each, found by discovery (see docs/experiments.md).

To add one, write a module here with a docstring ("Scenario: ... Covers: ..."), a module-level
`SPEC = ExperimentSpec(...)` and `def run(ctx: RunContext) -> ExperimentOutput`. No other file
changes.
"""
