"""``TextLesionSegTest``: the module's self-test inside Slicer (Developer mode > Reload and Test).

It never installs anything: without the Python requirements (torch included) it skips, saying
what is missing.
"""

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest


class TextLesionSegTest(ScriptedLoadableModuleTest):
    """The whole flow on a synthetic CT with a bundled demo model, then every correction."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TextLesionSeg_wholeFlow()

    def test_TextLesionSeg_wholeFlow(self) -> None:
        from .logic import TextLesionSegLogic

        logic = TextLesionSegLogic()
        missing = logic.missingDependencies()
        if missing:
            self.skipTest("install the module's requirements first (press Apply once): " + ", ".join(missing))

        import numpy as np

        from TextLesionSegLib.models.registry import default_model_name, list_models, weights_status
        from TextLesionSegLib.mrml.terminology import segment_terminology

        self.delayDisplay("Starting the TextLesionSeg self-test")
        models = [m.name for m in list_models() if weights_status(m.name).state == "bundled"]
        self.assertTrue(models, "no bundled demo model to test with")
        if default_model_name() in models:  # the model the panel offers first
            models.insert(0, default_model_name())

        # A synthetic CT: air, a water-density body and a +150 HU ball ("lesion") in it.
        k, j, i = np.mgrid[:48, :64, :64]
        array = np.full((48, 64, 64), -1000, dtype=np.int16)
        array[4:-4, 6:-6, 6:-6] = 30
        array[(k - 24) ** 2 + (j - 32) ** 2 + (i - 36) ** 2 <= 36] = 150
        volume = slicer.util.addVolumeFromArray(array, ijkToRAS=np.diag([-1.5, -1.5, 2.0, 1.0]), name="synthetic CT")

        imported, rows = logic.process(volume, "round hyperdense lesion in the liver", models[0],
                                       {"device": "cpu"}, keepProbability=True)
        node = imported.segmentation_node
        segmentation = node.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), 1)
        segment = segmentation.GetNthSegment(0)
        self.assertEqual(segment.GetName(), "round hyperdense lesion in the liver")
        self.assertEqual(segment_terminology(segment).count("~"), 6)
        self.assertTrue(rows)
        outcome = logic.rethresholdSegments(node, imported.segment_ids, 0.7)
        self.assertEqual(len(outcome.changed), len(imported.probability_nodes))
        logic.reviewSegment(node, imported.segment_ids[0], accept=True)
        self.assertEqual(logic.dropProbabilityMaps(node), len(imported.probability_nodes))
        self.delayDisplay("TextLesionSeg self-test passed")
