"""`evo serve`: the optimiser as a service.

Runs are submitted over HTTP (FastAPI), kept in a database (SQLAlchemy 2,
SQLite by default), executed at most ``--max-concurrent`` at a time, each in
a supervised driver process attached to the service's Ray instance, and
watched live through a Server-Sent Events stream fed by a run reporter.

    db.py          tables ``runs`` and ``events``; status changes and event appends
    app.py         the FastAPI application: auth, body limit, JSON errors, routers
    routers/       one router per resource: runs, their files, their events
    scheduler.py   the queue, worker processes and recovery after a restart
    worker.py      ``python -m evo.service.worker``: one run, reporting into the database
    ray_head.py    the loopback-only Ray instance that outlives a service crash
    server.py      ``evo serve``: home folder, token, Ray, scheduler, uvicorn
"""
