"""The dashboard: server-rendered pages (Jinja2) and their static files, at ``/``.

The pages carry no data: each one's script asks ``/api`` for it with the
token the user signed in with (kept in the tab's ``sessionStorage``, sent as
``Authorization: Bearer``), so every data request is authenticated exactly as
the API's other clients are; the event stream is read with ``fetch`` (an
``EventSource`` cannot send the header). The charting library (uPlot, MIT) is
vendored in ``static/vendor`` with its licence: nothing is fetched from the
internet, and the dashboard works offline.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=str(HERE / "static"))

#: (path, label) of the navigation bar
NAV = [("/", "Runs"), ("/compare", "Compare"), ("/submit", "Submit")]


def _page(request: Request, template: str, title: str, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"title": title, "nav": NAV, "path": request.url.path, **context})


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    """Every run and study, live."""
    return _page(request, "runs.html", "Runs")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """Sign in with the service token."""
    return _page(request, "login.html", "Sign in")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    """One run: live curve, config, summary, plots, actions."""
    return _page(request, "run.html", f"Run {run_id}", run_id=run_id)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    """The curves and summary figures of the runs picked (``?ids=a,b,c``)."""
    return _page(request, "compare.html", "Compare")


@router.get("/submit", response_class=HTMLResponse)
def submit_page(request: Request) -> HTMLResponse:
    """Submit a config: pasted, or one of the shipped ones."""
    return _page(request, "submit.html", "Submit a run")


@router.get("/index.html")
def index() -> RedirectResponse:
    return RedirectResponse("/")


# --------------------------------------------------------------------------- the shipped configs, for the submit form
api = APIRouter(prefix="/api", tags=["configs"])
SHIPPED = HERE.parent.parent / "configs"


class ShippedConfig(BaseModel):
    """A config that comes with evo: its file name and TOML text."""

    name: str
    text: str


class ShippedConfigs(BaseModel):
    configs: list[ShippedConfig]


@api.get("/configs", response_model=ShippedConfigs)
def shipped_configs() -> ShippedConfigs:
    """The configs shipped with evo (``configs/*.toml`` of the installation), to start a submission from."""
    files = sorted(SHIPPED.glob("*.toml")) if SHIPPED.is_dir() else []
    return ShippedConfigs(configs=[ShippedConfig(name=p.name, text=p.read_text()) for p in files])
