"""The decode-and-embed pipeline: order kept, bad images refused in place, results equal direct embedding."""

from __future__ import annotations

import numpy as np

from vision.embedder import open_embedder
from vision.errors import ImageRejected
from vision.pipeline import embed_sources, load_pixels


def test_bad_images_do_not_sink_the_batch(tiny, real_photos):
    embedder = open_embedder("test-tiny", "onnx")
    good = real_photos[2:9]
    sources = [good[0], b"", good[1], b"not an image at all", good[2], *good[3:], real_photos[0].read_bytes()[:5000]]
    results = list(embed_sources(embedder, sources, batch_size=3, workers=2))
    assert [r.index for r in results] == list(range(len(sources)))
    failed = {r.index for r in results if r.error is not None}
    assert failed == {1, 3, len(sources) - 1}
    assert all(isinstance(r.error, ImageRejected) and str(r.error) for r in results if r.error)
    direct = embedder.embed_pixels(np.stack([load_pixels(p, embedder.manifest.preprocess) for p in good]))
    got = np.stack([r.vector for r in results if r.vector is not None])
    np.testing.assert_allclose(got, direct, atol=1e-6)


def test_empty_input_yields_nothing(tiny):
    assert list(embed_sources(open_embedder("test-tiny", "onnx"), [])) == []
