"""Energy and CO2 of a training run, measured with codecarbon when it is installed.

codecarbon is optional (`pip install .[emissions]`). Its offline tracker needs no network:
the grid's carbon intensity comes from its bundled tables for `country_iso_code`
(env `CODECARBON_COUNTRY`, default USA).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from trainer.results import Emissions

logger = logging.getLogger(__name__)


@dataclass
class EmissionsMeter:
    """Holds the run's emissions once the measured block ends (None without codecarbon)."""

    result: Emissions | None = None


@contextlib.contextmanager
def track_emissions() -> Iterator[EmissionsMeter]:
    """Measure the block's energy and CO2 with codecarbon, when it is installed."""
    result = EmissionsMeter()
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        yield result
        return
    tracker = OfflineEmissionsTracker(
        country_iso_code=os.environ.get("CODECARBON_COUNTRY", "USA"),
        save_to_file=False,
        log_level="error",
        allow_multiple_runs=True,
    )
    tracker.start()
    try:
        yield result
    finally:
        emissions_kg = tracker.stop()
        data = tracker.final_emissions_data
        if emissions_kg is None or data is None:
            logger.warning("codecarbon did not report emissions for this run")
        else:
            result.result = Emissions(
                emissions_kg=float(emissions_kg),
                energy_consumed=float(data.energy_consumed),
                duration_s=float(data.duration),
                country_name=data.country_name,
                cpu_model=data.cpu_model,
                gpu_model=data.gpu_model or None,
            )
