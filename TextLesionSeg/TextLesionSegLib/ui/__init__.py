"""The Slicer panel: Qt widget, Slicer logic, parameter node, dependency install, self-test.

Only Slicer loads this package (it imports ``qt`` and ``slicer``); Slicer does not scan it for
modules because it is not a module folder of the extension. The module file
``TextLesionSeg.py`` is a thin shell that imports from here. Run control lives Qt-free in
:mod:`TextLesionSegLib.mrml.run_controller`, scene work in :mod:`TextLesionSegLib.mrml`: this
package only connects them to widgets.

* :mod:`.parameters` — the module's saved state (``parameterNodeWrapper``).
* :mod:`.logic` — ``TextLesionSegLogic``: models, runs, results, corrections, review.
* :mod:`.install` — one-confirmation install of the Python requirements (torch through PyTorchUtils).
* :mod:`.widget` — the panel.
* :mod:`.self_test` — ``TextLesionSegTest``, the module's self-test in Slicer.
"""
