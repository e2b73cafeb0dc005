"""The grid: every cell of a config, one after another; finished cells are skipped, a failed cell is
reported and the grid goes on. A stop request (SIGTERM/SIGINT, repro.signals) ends the grid."""
from __future__ import annotations

import logging
import time

from repro import console, progress, signals
from repro.training import distributed, host_memory
from repro.study.cell import CellDiverged, is_finished, run_cell
from repro.config import Config
from repro.errors import one_line

log = logging.getLogger("repro")


def run_grid(cfg: Config, cells: list[Config] | None = None) -> tuple[list[str], list[str], dict[str, str]]:
    """Every cell of the grid, or the given ones (a shard's: repro.study.shards.select); returns (ran, skipped,
    failed: cell_id -> one-line reason)."""
    cells = cfg.cells() if cells is None else cells
    mesh = distributed.make_mesh(cfg.mesh.data)
    ran, skipped, failed = [], [], {}
    bar = None
    if progress.enabled() and progress.on_terminal():
        from tqdm import tqdm
        bar = tqdm(total=len(cells), desc=f"grid {cfg.name}", unit="cell", dynamic_ncols=True,
                   file=console.stream())
    t0 = time.perf_counter()
    for i, cell in enumerate(cells):
        signals.check()
        try:
            if distributed.main_decides(is_finished(cell)):   # every process of a multi-host run alike
                skipped.append(cell.cell_id)
            else:
                if bar is not None:
                    bar.set_postfix_str(cell.cell_id)
                else:
                    progress.line(f"grid {cfg.name}: cell {i + 1}/{len(cells)} {cell.cell_id} "
                                  f"({len(ran)} ran, {len(skipped)} already finished, {len(failed)} failed, "
                                  f"{progress.duration(time.perf_counter() - t0)} elapsed)")
                run_cell(cell, mesh)
                ran.append(cell.cell_id)
        except CellDiverged as e:   # on_divergence: record: an outcome of the cell, not a failure of the run
            ran.append(cell.cell_id)
            log.warning("cell %s: %s", cell.cell_id, one_line(e))
        except Exception as e:  # noqa: BLE001 - a failed cell is reported and the grid goes on
            failed[cell.cell_id] = one_line(e)
            log.error("cell %s failed: %s", cell.cell_id, one_line(e), exc_info=True)   # traceback: repro.log
        if not skipped or skipped[-1] != cell.cell_id:   # its peak is not carried into the next cell
            before, after = host_memory.release_between_cells()
            if before is not None:
                log.info("host memory after %s: %.0f MB resident, %.0f MB once freed pages are returned",
                         cell.cell_id, before, after)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return ran, skipped, failed
