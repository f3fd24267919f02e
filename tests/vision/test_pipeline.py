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


def test_thumbnails_match_pillows_thumbnail_without_touching_the_decoded_image(tiny, real_photos):
    """The pipeline resizes a new image instead of copying the decoded one for `Image.thumbnail`: same
    size rule (aspect kept, never enlarged) and the same pixels, for every shape."""
    import io
    import itertools

    from PIL import Image

    from vision.decode import decode_image
    from vision.pipeline import thumbnail_dimensions

    for width, height, longest in itertools.product([1, 5, 255, 256, 257, 601, 4000], [1, 7, 256, 450, 3001], [256, 7]):
        expected = Image.new("RGB", (width, height))
        expected.thumbnail((longest, longest))
        assert thumbnail_dimensions((width, height), longest) == expected.size, (width, height, longest)
    embedder = open_embedder("test-tiny", "onnx")
    photo = real_photos[3].read_bytes()
    (result,) = embed_sources(embedder, [photo], thumbnail_size=96)
    decoded = decode_image(photo, draft_size=embedder.manifest.preprocess.draft_size)
    assert result.size == decoded.size
    decoded.thumbnail((96, 96), Image.Resampling.BICUBIC, reducing_gap=1.0)
    reference = io.BytesIO()
    decoded.save(reference, format="JPEG", quality=85)
    assert result.thumbnail == reference.getvalue()
