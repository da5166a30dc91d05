"""``/api/runs/{id}/files``: a run directory's artefacts, and nothing outside it.

A path with ``..``, an absolute path, and a path (or symlink) that resolves
outside the run directory are refused with 400 before anything is opened.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from evo.service.db import Database
from evo.service.routers import bearer_scheme, database, run_or_404
from evo.service.schemas import ERRORS, NOT_FOUND, ErrorBody, FileEntry, FileList

router = APIRouter(prefix="/api/runs", tags=["files"], dependencies=[Depends(bearer_scheme)], responses=ERRORS)
Db = Annotated[Database, Depends(database)]


def _run_dir(db: Database, run_id: str) -> Path:
    with db.read() as session:
        return Path(run_or_404(session, run_id).run_dir)


def _inside(root: Path, candidate: Path) -> bool:
    try:
        return candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a name too long, a symlink loop: not a file we serve
        return False


def safe_path(root: Path, relative: str) -> Path:
    """``root / relative`` if it stays inside ``root``; HTTP 400 naming the reason otherwise."""
    if "\0" in relative or "\\" in relative:
        raise HTTPException(400, f"path {relative!r} refused: it contains a NUL byte or a backslash")
    if any(len(part.encode()) > 255 for part in relative.split("/")) or len(relative.encode()) > 4000:
        raise HTTPException(400, "path refused: a name in it is longer than 255 bytes")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("/"):
        raise HTTPException(400, f"path {relative!r} refused: absolute paths lead outside the run directory")
    if ".." in pure.parts:
        raise HTTPException(400, f"path {relative!r} refused: '..' leads outside the run directory")
    candidate = root / pure
    if not _inside(root, candidate):
        raise HTTPException(400, f"path {relative!r} refused: it is a symlink leading outside the run directory")
    return candidate


@router.get("/{run_id}/files", response_model=FileList, responses=NOT_FOUND)
def list_files(run_id: str, db: Db) -> FileList:
    """Every file of the run directory (plots, best genome, summary, metrics, checkpoint)."""
    root = _run_dir(db, run_id)
    entries = []
    if root.is_dir():
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if _inside(root, Path(folder) / d))
            for name in sorted(names):
                path = Path(folder) / name
                if name.startswith(".") or not _inside(root, path) or not path.is_file():
                    continue  # temporary files of atomic writes, links leading out
                try:
                    stat = path.stat()
                except OSError:  # removed while we listed (a checkpoint being replaced)
                    continue
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                entries.append(FileEntry(path=path.relative_to(root).as_posix(), size=stat.st_size, modified=modified))
    return FileList(run_id=run_id, files=entries)


@router.get(
    "/{run_id}/files/{path:path}",
    response_class=FileResponse,
    responses={
        **NOT_FOUND,
        400: {"model": ErrorBody, "description": "path outside the run directory"},
        200: {"content": {"application/octet-stream": {}}},
    },
)
def get_file(run_id: str, path: str, db: Db) -> FileResponse:
    """One file of the run directory."""
    root = _run_dir(db, run_id)
    target = safe_path(root, path)
    try:
        found = target.is_file()
    except OSError:  # the message would name the server's path: answer in the client's terms
        found = False
    if not found:
        raise HTTPException(404, f"run {run_id!r} has no file {path!r}")
    return FileResponse(target, filename=target.name)
