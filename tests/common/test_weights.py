import pytest

from common.errors import WeightsError
from common.settings import load_settings
from common.weights import is_ultralytics_name, resolve_weights


def test_explicit_path_wins_and_missing_path_is_an_error(tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"x")
    assert resolve_weights(str(f), []).path == f.resolve()
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(str(tmp_path / "absent.onnx"), [tmp_path])


def test_names_are_found_in_folders_in_order_including_export_names(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "yolov8n-pose_int8_openvino_model").mkdir(parents=True)
    first.mkdir()
    (first / "osnet.onnx").write_bytes(b"x")
    (second / "osnet.onnx").write_bytes(b"y")
    assert resolve_weights("osnet", [first, second]).path == (first / "osnet.onnx").resolve()
    found = resolve_weights("yolov8n-pose.pt", [first, second])
    assert found.path == (second / "yolov8n-pose_int8_openvino_model").resolve()


def test_unfound_names_list_every_place_searched_or_go_to_ultralytics(tmp_path):
    missing = resolve_weights("my-reid", [tmp_path / "a", tmp_path / "b"])
    assert missing.path is None and missing.fetch_name is None
    message = missing.missing_message("re-id", "--reid")
    assert str(tmp_path / "a") in message and str(tmp_path / "b") in message and "--reid PATH" in message
    fetch = resolve_weights("yolov8n-pose", [tmp_path], allow_fetch_name=True)
    assert fetch.path is None and fetch.fetch_name == "yolov8n-pose.pt"
    assert is_ultralytics_name("yolo11n.pt") and not is_ultralytics_name("osnet.onnx")


def test_settings_come_from_environment_then_settings_file_then_cache(tmp_path, monkeypatch):
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(f'weights_dir = "{tmp_path / "from-file"}"\nreid = "osnet"\ndevice = "cpu"\n')
    monkeypatch.setenv("REID_APP_SETTINGS", str(settings_file))
    monkeypatch.setenv("REID_APP_WEIGHTS", str(tmp_path / "from-env"))
    monkeypatch.setenv("REID_APP_DB", str(tmp_path / "cases.db"))
    settings = load_settings()
    assert settings.weights_dirs[:2] == [tmp_path / "from-env", tmp_path / "from-file"]
    assert settings.weights_dirs[-1].name == "weights"
    assert settings.reid == "osnet" and settings.device == "cpu" and settings.db == str(tmp_path / "cases.db")
    settings_file.write_text("this is = = not toml")
    with pytest.raises(Exception, match="settings file"):
        load_settings()
