"""The remote engine: ``textlesionseg serve`` runs the local worker's request handling behind
HTTP (FastAPI + uvicorn), so many Slicer workstations share one GPU machine.

``jobs`` (the bounded queue and the engine thread, no FastAPI), ``app`` (the routes, token and
limits), ``main`` (start-up), ``loadtest`` (the bounded loopback load run). The client side is
``worker.remote`` (standard library only). Nothing here is imported by Slicer.
"""
