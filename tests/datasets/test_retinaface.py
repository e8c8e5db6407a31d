"""RetinaFace from checkpoints in the Pytorch_Retinaface file format, written here with random
weights (the release's trained files cannot be had offline, so detection quality is not tested;
loading, the network's layout, anchors, decoding, thresholds and the cache key are)."""

import math

import cv2
import numpy as np
import pytest
import torch

from mer_bench.datasets import faces
from mer_bench.datasets.faces import Box, detect_face
from mer_bench.datasets.bundle_cache import BundleCache
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.retinaface import (
    RetinaFace,
    WeightsError,
    WeightsNotFound,
    decode_boxes,
    detect_faces,
    load_retinaface,
    plus_one_nms,
    prior_boxes,
    select_detections,
    to_input,
)
from tests.conftest import face_frame


def random_state(network: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the release's keys and shapes and random values: convolutions at
    He scale so activations stay finite, heads small (boxes near their anchors, as trained
    ones are), batch norms near identity."""
    with torch.device("meta"):
        shapes = RetinaFace(network).state_dict()
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, meta in shapes.items():
        shape = tuple(meta.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):  # the first one sees raw pixels (minus the mean)
            first = key in ("body.stage1.0.1.running_var", "body.bn1.running_var")
            state[key] = (torch.rand(shape, generator=generator) + 0.5) * (1e4 if first else 1)
        elif len(shape) == 4:  # conv weight
            fan_in = shape[1] * shape[2] * shape[3]
            scale = 0.2 / math.sqrt(fan_in) if "Head." in key else math.sqrt(2 / fan_in)
            state[key] = torch.randn(shape, generator=generator) * scale
        elif key.endswith(".weight"):  # batch-norm scale
            state[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        else:  # biases, running means
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    return state


def write_checkpoint(path, network: str = "mobilenet0.25", seed: int = 0, state=None):
    """Saved as the release's files are: torch.save of a DataParallel state dict."""
    state = random_state(network, seed) if state is None else state
    torch.save({f"module.{key}": value for key, value in state.items()}, path)
    return path


def casme_frame() -> np.ndarray:
    """A grey 640x480 frame (CASME II's size) with the astronaut face in the middle."""
    frame = np.full((480, 640), 120, np.uint8)
    frame[120:360, 210:430] = cv2.cvtColor(face_frame(), cv2.COLOR_BGR2GRAY)
    return frame


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared CI machine two threads wait on each other (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("weights") / "mobilenet0.25_Final.pth")


def test_mobilenet_network_has_the_release_layout():
    net = RetinaFace("mobilenet0.25")
    assert sum(p.numel() for p in net.parameters()) == 426_608
    keys = net.state_dict()
    for key in ("body.stage1.0.0.weight", "body.stage3.1.4.running_var", "fpn.output1.0.weight",
                "fpn.merge2.1.bias", "ssh1.conv3X3.0.weight", "ssh3.conv7x7_3.1.weight",
                "ClassHead.0.conv1x1.weight", "BboxHead.2.conv1x1.bias",
                "LandmarkHead.1.conv1x1.weight"):
        assert key in keys, key
    assert len(keys) == 300 and not any("fc" in k or "avg" in k for k in keys)
    assert keys["ClassHead.0.conv1x1.weight"].shape == (4, 64, 1, 1)  # 2 anchors x 2 classes
    assert keys["LandmarkHead.0.conv1x1.weight"].shape == (20, 64, 1, 1)
    assert keys["fpn.output3.0.weight"].shape == (64, 256, 1, 1)


def test_anchors_at_640x480_and_the_heads_give_one_prediction_each():
    # Strides 8/16/32 give 80x60, 40x30 and 20x15 locations, two anchors each.
    assert prior_boxes(480, 640).shape == (2 * (80 * 60 + 40 * 30 + 20 * 15), 4) == (12600, 4)
    assert prior_boxes(640, 640).shape == (16800, 4)
    priors = prior_boxes(480, 640)
    assert torch.allclose(priors[0], torch.tensor([4 / 640, 4 / 480, 16 / 640, 16 / 480]))
    assert torch.allclose(priors[1], torch.tensor([4 / 640, 4 / 480, 32 / 640, 32 / 480]))
    assert torch.allclose(priors[2, :2], torch.tensor([12 / 640, 4 / 480]))  # next column
    assert torch.allclose(priors[-1], torch.tensor([624 / 640, 464 / 480, 512 / 640, 512 / 480]))
    with torch.no_grad():
        offsets, logits, landmarks = RetinaFace().eval()(torch.zeros(1, 3, 480, 640))
    assert offsets.shape == (1, 12600, 4) and logits.shape == (1, 12600, 2)
    assert landmarks.shape == (1, 12600, 10)


def test_box_decoding_on_a_hand_made_prediction():
    priors = torch.tensor([[0.5, 0.5, 0.1, 0.2], [0.25, 0.75, 0.4, 0.4]])
    offsets = torch.tensor([[1.0, -1.0, math.log(2) / 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]])
    boxes = decode_boxes(offsets, priors)
    # Centre moves by offset * 0.1 * anchor size: (0.51, 0.48); width doubles to 0.2.
    assert torch.allclose(boxes[0], torch.tensor([0.41, 0.38, 0.61, 0.58]), atol=1e-6)
    assert torch.allclose(boxes[1], torch.tensor([0.05, 0.55, 0.45, 0.95]), atol=1e-6)


def test_confidence_top_k_and_nms_on_hand_made_detections():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.8, 0.95, 0.7, 0.3])
    kept, kept_scores = select_detections(boxes, scores, confidence=0.5, nms=0.4)
    # The 0.3 one is below the threshold; the 0.8 one overlaps the best (IoU 0.68).
    assert kept_scores.tolist() == pytest.approx([0.95, 0.7])
    assert kept.tolist() == [[1, 1, 11, 11], [50, 50, 60, 60]]
    _, loose = select_detections(boxes, scores, confidence=0.5, nms=0.9)
    assert loose.tolist() == pytest.approx([0.95, 0.8, 0.7])
    _, top = select_detections(boxes, scores, confidence=0.0, nms=0.9, top_k=2)
    assert top.tolist() == pytest.approx([0.95, 0.8])
    assert select_detections(boxes, scores, confidence=1.01, nms=0.4)[0].shape == (0, 4)


def test_checkpoint_loads_strictly_and_detects_deterministically(weights):
    net = load_retinaface(weights)  # the network read from the keys
    assert net.network == "mobilenet0.25" and not net.training
    expected = random_state("mobilenet0.25")
    loaded = net.state_dict()
    assert set(loaded) == set(expected)
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)

    frame = casme_frame()
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    boxes, scores = detect_faces(net, bgr, confidence=0.0, nms=0.4)
    again, again_scores = detect_faces(load_retinaface(weights), bgr, confidence=0.0, nms=0.4)
    assert boxes.shape[1] == 4 and 0 < len(boxes) <= 750
    assert np.array_equal(boxes, again) and np.array_equal(scores, again_scores)
    assert np.all(np.diff(scores) <= 0)  # best first

    box = detect_face(frame, "retinaface", weights=str(weights), confidence=0.0)
    assert isinstance(box, Box)
    # The grey frame went in as three equal BGR channels; the box is the best one, clipped.
    x1, y1, x2, y2 = boxes[0]
    assert box == Box(max(math.floor(x1), 0), max(math.floor(y1), 0),
                      min(math.ceil(x2), 640), min(math.ceil(y2), 480))
    assert 0 <= box.left < box.right <= 640 and 0 <= box.top < box.bottom <= 480


def test_thresholds_change_what_is_returned(weights):
    net = load_retinaface(weights)
    bgr = cv2.resize(cv2.cvtColor(casme_frame(), cv2.COLOR_GRAY2BGR), (320, 240))  # 3150 anchors
    assert len(detect_faces(net, bgr, confidence=0.0, nms=1.0)[0]) == 750  # keep_top_k
    with torch.no_grad():
        _, logits, _ = net(to_input(bgr))
    scores = torch.softmax(logits[0], -1)[:, 1].sort(descending=True).values
    threshold = float(scores[200])  # 200 anchors score above it
    everything, _ = detect_faces(net, bgr, confidence=threshold, nms=1.0)
    separate, _ = detect_faces(net, bgr, confidence=threshold, nms=0.1)
    assert len(everything) == 200
    assert 0 < len(separate) < 200
    assert detect_faces(net, bgr, confidence=1.01, nms=0.4)[0].shape == (0, 4)
    assert detect_face(bgr, "retinaface", weights=weights, confidence=1.01) is None


def test_missing_unreadable_and_mismatched_files_give_a_clear_error(tmp_path, weights):
    missing = tmp_path / "Resnet50_Final.pth"
    with pytest.raises(WeightsNotFound, match="Resnet50_Final.pth does not exist") as error:
        load_retinaface(missing)
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ValueError)
    with pytest.raises(WeightsNotFound):
        detect_face(casme_frame(), "retinaface", weights=missing)

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights.read_bytes()[:50_000])
    with pytest.raises(WeightsError, match="truncated.pth cannot be read as a PyTorch checkpoint"):
        load_retinaface(truncated)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_retinaface(tmp_path / "text.pth")

    # A mobilenet file where a ResNet-50 is asked for.
    with pytest.raises(WeightsError, match="do not fit the resnet50 network; its keys look like "
                                           "mobilenet0.25: missing keys: body.bn1.bias"):
        load_retinaface(weights, network="resnet50")
    with pytest.raises(WeightsError, match="unknown RetinaFace network 'resnet18'"):
        load_retinaface(weights, network="resnet18")

    state = random_state("mobilenet0.25")
    renamed = dict(state)
    renamed["ssh1.conv7X7_3.0.weight"] = renamed.pop("ssh1.conv7x7_3.0.weight")
    write_checkpoint(tmp_path / "renamed.pth", state=renamed)
    with pytest.raises(WeightsError) as error:
        load_retinaface(tmp_path / "renamed.pth")
    message = str(error.value)
    assert "renamed.pth do not fit the mobilenet0.25 network" in message
    assert "missing keys: ssh1.conv7x7_3.0.weight" in message
    assert "unexpected keys: ssh1.conv7X7_3.0.weight" in message

    reshaped = dict(state, **{"ClassHead.0.conv1x1.weight": torch.zeros(6, 64, 1, 1)})
    write_checkpoint(tmp_path / "reshaped.pth", state=reshaped)
    with pytest.raises(WeightsError, match=r"wrong shapes: ClassHead.0.conv1x1.weight "
                                           r"\(6, 64, 1, 1\) \(expected \(4, 64, 1, 1\)\)"):
        load_retinaface(tmp_path / "reshaped.pth")

    torch.save({"module.conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="neither a mobilenet0.25 nor a resnet50 checkpoint.*"
                                           "its first keys: conv.weight"):
        load_retinaface(tmp_path / "other.pth")


def test_resnet50_file_in_the_release_format_loads(tmp_path):
    with torch.device("meta"):  # layout only; random init of 27 M parameters takes seconds
        net = RetinaFace("resnet50")
    assert sum(p.numel() for p in net.parameters()) == 27_293_600
    keys = net.state_dict()
    for key in ("body.conv1.weight", "body.layer1.0.conv1.weight",
                "body.layer2.0.downsample.0.weight", "body.layer4.2.bn3.running_var",
                "ssh2.conv5X5_1.0.weight", "BboxHead.0.conv1x1.weight"):
        assert key in keys, key
    assert keys["fpn.output1.0.weight"].shape == (256, 512, 1, 1)
    assert keys["fpn.output3.0.weight"].shape == (256, 2048, 1, 1)
    assert keys["ClassHead.0.conv1x1.weight"].shape == (4, 256, 1, 1)
    assert not any(k.startswith(("body.fc", "body.avgpool")) for k in keys)

    path = write_checkpoint(tmp_path / "Resnet50_Final.pth", "resnet50")
    loaded = load_retinaface(path)
    assert loaded.network == "resnet50"
    small = cv2.resize(cv2.cvtColor(casme_frame(), cv2.COLOR_GRAY2BGR), (160, 120))
    boxes, scores = detect_faces(loaded, small, confidence=0.0, nms=0.4)
    assert boxes.shape == (len(scores), 4) and 0 < len(scores) <= 2 * (20 * 15 + 10 * 8 + 5 * 4)
    with pytest.raises(WeightsError, match="do not fit the mobilenet0.25 network; its keys look "
                                           "like resnet50"):
        load_retinaface(path, network="mobilenet0.25")


def test_detector_options_are_in_the_settings_digest(tmp_path, weights):
    dlib = PreprocessSettings()
    retina = PreprocessSettings(detector="retinaface", detector_weights=str(weights))
    assert dlib.digest() != retina.digest()
    # dlib reads none of the RetinaFace options: they leave its key alone.
    assert PreprocessSettings(detector_confidence=0.5).digest() == dlib.digest()
    # Another checkpoint, another key; the same bytes elsewhere, the same key.
    other = write_checkpoint(tmp_path / "other.pth", seed=1)
    assert PreprocessSettings(detector="retinaface", detector_weights=str(other)).digest() \
        != retina.digest()
    copy = tmp_path / "copy.pth"
    copy.write_bytes(weights.read_bytes())
    assert PreprocessSettings(detector="retinaface", detector_weights=str(copy)).digest() \
        == retina.digest()
    assert PreprocessSettings(detector="retinaface", detector_weights=str(weights),
                              detector_nms=0.3).digest() != retina.digest()
    assert faces.file_sha256(weights) == faces.file_sha256(copy)

    with pytest.raises(ValueError, match="retinaface detector needs its weights file"):
        PreprocessSettings(detector="retinaface")
    with pytest.raises(ValueError, match="unknown face detector 'mtcnn'"):
        PreprocessSettings(detector="mtcnn")
    with pytest.raises(WeightsNotFound, match="gone.pth does not exist"):
        PreprocessSettings(detector="retinaface",
                           detector_weights=str(tmp_path / "gone.pth")).digest()


def test_bundles_made_with_retinaface_have_their_own_cache(tmp_path, weights, face_clip):
    settings = PreprocessSettings(detector="retinaface", detector_weights=str(weights),
                                  detector_confidence=0.0)
    cache = BundleCache(tmp_path / "cache", settings)
    key, made = cache.ensure(face_clip)
    bundle = cache.load(key)
    assert made and bundle["faces"].shape == (3, 128, 128)
    onset = cv2.imread(str(face_clip.frame_path(face_clip.onset)), cv2.IMREAD_GRAYSCALE)
    expected = detect_face(onset, "retinaface", weights=weights, confidence=0.0)
    assert tuple(bundle["box"]) == tuple(expected)
    assert cache.path(key).parent.parent.name == settings.digest() != PreprocessSettings().digest()


def test_the_releases_nms_areas_keep_boxes_that_exact_areas_merge():
    # Two 4x4-pixel boxes shifted by 2: IoU 8/24 = 0.333 with exact areas, 15/35 = 0.43 with
    # the release's +1 pixel; at IoU 0.4 exact areas keep both, the release's keeps one.
    boxes = torch.tensor([[0.0, 0, 4, 4], [2.0, 0, 6, 4]])
    scores = torch.tensor([0.95, 0.9])
    exact, _ = select_detections(boxes, scores, confidence=0.5, nms=0.4)
    release, _ = select_detections(boxes, scores, confidence=0.5, nms=0.4, nms_area="plus_one")
    assert len(exact) == 2 and release.tolist() == [[0.0, 0, 4, 4]]
    many = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]])
    assert plus_one_nms(many, 0.4).tolist() == [0, 2]  # the big overlaps merge either way
    with pytest.raises(ValueError, match="NMS area convention 'half'"):
        select_detections(boxes, scores, confidence=0.5, nms=0.4, nms_area="half")


def test_the_release_preset_reads_colour_frames_and_keys_its_own_cache(weights, face_clip,
                                                                       monkeypatch, tmp_path):
    from mer_bench.datasets import preprocess
    from mer_bench.datasets.faces import DETECTOR_PRESETS

    harness = PreprocessSettings(detector="retinaface", detector_weights=str(weights))
    release = PreprocessSettings(detector="retinaface", detector_weights=str(weights),
                                 **DETECTOR_PRESETS["release"])
    assert harness.digest() == PreprocessSettings(
        detector="retinaface", detector_weights=str(weights),
        **DETECTOR_PRESETS["harness"]).digest()  # the default: keys made before stay
    assert release.digest() != harness.digest()
    seen = []

    def spy(image, name, **options):
        seen.append((image.ndim, options))
        return None  # no face: enough to see what the detector was given

    monkeypatch.setattr(preprocess, "detect_face", spy)
    for settings in (harness, release):
        with pytest.raises(preprocess.FaceNotFound):
            BundleCache(tmp_path / "c", settings).ensure(face_clip)
    assert [ndim for ndim, _ in seen] == [2, 3]
    assert seen[1][1]["confidence"] == 0.5 and seen[1][1]["nms_area"] == "plus_one"
    assert "colour" not in seen[1][1]
