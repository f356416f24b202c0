"""What every other package may import: the types shared by the pipeline, the models, training,
evaluation and the worker (:mod:`.types`) and the table of inference settings (:mod:`.settings`).
Nothing here imports another TextLesionSegLib package except ``errors``."""
