"""The background worker Slicer talks to: a persistent process that keeps models loaded.

``client.WorkerClient`` starts ``python -m TextLesionSegLib.worker`` and exchanges JSON lines
with it (``protocol``); ``server.run_request_sync`` runs a request in-process. Nothing here
imports torch at file scope, so Slicer can import the client before torch is installed.
"""
