"""The hooks a zsbench plugin implements. Each takes a ``register`` callback, called as
``register(OptionsClass)`` with a class declared by ``zsbench.component`` (options checked
against it, implementation imported on first build; see ``zsbench.schema``) or as
``register(name, factory)`` with any callable that builds the component from its spec options.
``zsbench.interfaces`` says what each kind must return.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zsbench")


@hookspec
def register_encoders(register):
    """Register encoders: factories ``(context: EncoderContext, **options) -> Encoder``."""


@hookspec
def register_losses(register):
    """Register losses: factories ``(context: LossContext, **options) -> Loss``."""


@hookspec
def register_calibrators(register):
    """Register calibrators: factories ``(**options) -> Calibrator`` (seen/unseen balancing)."""


@hookspec
def register_datasets(register):
    """Register datasets: factories ``(root: Path, **options) -> DatasetBundle``."""


@hookspec
def register_methods(register):
    """Register methods: factories ``(**options) -> Method``; a method fits on a training view
    and returns a Scorer. Closed-form baselines and encoder+loss trainers both plug in here."""
