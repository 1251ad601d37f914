"""Import plugins: loading, metadata injection and conversion with a real qemu-img."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from oslo_config import cfg

from glimpse.config import image_format, import_plugins
from glimpse.imports import plugins
from glimpse.imports.plugins import PluginError, PluginInput, PluginOutput, image_conversion
from tests.imports.test_inspection import (
    MiB,
    make_image,
    pattern,
    qemu_img,
    qemu_info,
    requires_qemu_img,
)

MakeConf = Callable[..., cfg.ConfigOpts]


@pytest.fixture
def make_conf(tmp_path: pathlib.Path) -> MakeConf:
    """A configuration with the plugin groups; ``group__name=value`` overrides an option,
    ``config_text`` is read as a config file first."""

    def make(config_text: str | None = None, **overrides: Any) -> cfg.ConfigOpts:
        conf = cfg.ConfigOpts()
        for module in (import_plugins, image_format):
            for group, opts in module.OPTS:
                conf.register_opts(opts, group=group)
        files: list[str] = []
        if config_text is not None:
            path = tmp_path / "glimpse-image-import.conf"
            path.write_text(config_text)
            files.append(str(path))
        conf([], project="glimpse", default_config_files=files)
        for key, value in overrides.items():
            group, _, name = key.partition("__")
            conf.set_override(name, value, group=group)
        return conf

    return make


def image(disk_format: str = "raw", container_format: str = "bare", **extra: Any) -> dict[str, Any]:
    return {
        "id": "2f7c2d1e-1111-4c6e-9d0a-5a3f9b2c0e11",
        "disk_format": disk_format,
        "container_format": container_format,
        "owner": "project-a",
        "properties": {},
        **extra,
    }


# --- loading ---------------------------------------------------------------------------------


def test_no_plugins_by_default(make_conf: MakeConf) -> None:
    assert plugins.load_plugins(make_conf()) == []


def test_plugins_load_in_the_configured_order(make_conf: MakeConf) -> None:
    conf = make_conf(
        "[image_import_opts]\n"
        "image_import_plugins = ['inject_image_metadata', 'no_op', 'image_conversion']\n"
    )

    loaded = plugins.load_plugins(conf)

    assert [p.name for p in loaded] == ["inject_image_metadata", "no_op", "image_conversion"]


def test_the_plugin_list_needs_glances_brackets(make_conf: MakeConf) -> None:
    conf = make_conf("[image_import_opts]\nimage_import_plugins = no_op\n")

    with pytest.raises(cfg.ConfigFileValueError, match='should start with "\\["'):
        plugins.load_plugins(conf)


def test_an_unknown_plugin_name_is_a_clear_error(make_conf: MakeConf) -> None:
    conf = make_conf(image_import_opts__image_import_plugins=["no_op", "image_decompression"])

    with pytest.raises(ValueError) as caught:
        plugins.load_plugins(conf)

    assert str(caught.value) == (
        "Unknown import plugin 'image_decompression' in [image_import_opts] "
        "image_import_plugins; known plugins: image_conversion, inject_image_metadata, no_op."
    )


def test_glance_option_names_and_defaults(make_conf: MakeConf) -> None:
    conf = make_conf()

    assert conf.image_conversion.output_format == "raw"
    assert conf.inject_metadata_properties.ignore_user_roles == ["admin"]
    assert conf.inject_metadata_properties.inject == {}
    with pytest.raises(ValueError):
        conf.set_override("output_format", "vdi", group="image_conversion")
    for _group, opts in import_plugins.OPTS:
        for opt in opts:
            assert opt.help and len(opt.help) > 10, opt.name


# --- no_op and inject_image_metadata ---------------------------------------------------------


def test_no_op_changes_nothing(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    out = plugins.NoOp().run(PluginInput(make_conf(), image(), str(tmp_path / "staged"), []))

    assert out == PluginOutput(staged_path=str(tmp_path / "staged"))


INJECT_CONF = "[inject_metadata_properties]\ninject = hw_scsi_model:virtio-scsi,site:ams1\n"


def test_inject_adds_the_configured_properties(make_conf: MakeConf) -> None:
    conf = make_conf(INJECT_CONF)

    out = plugins.InjectImageMetadata().run(PluginInput(conf, image(), "/staged/x", ["member"]))

    assert out == PluginOutput(
        staged_path="/staged/x",
        property_changes={"hw_scsi_model": "virtio-scsi", "site": "ams1"},
    )


@pytest.mark.parametrize("roles", [["member", "admin"], ["Admin"]])
def test_inject_skips_users_with_an_ignored_role(make_conf: MakeConf, roles: list[str]) -> None:
    out = plugins.InjectImageMetadata().run(
        PluginInput(make_conf(INJECT_CONF), image(), "/staged/x", roles)
    )

    assert out == PluginOutput(staged_path="/staged/x")


def test_the_ignored_roles_are_configurable(make_conf: MakeConf) -> None:
    conf = make_conf(INJECT_CONF + "ignore_user_roles = service,builder\n")
    plugin = plugins.InjectImageMetadata()

    as_admin = plugin.run(PluginInput(conf, image(), "/s", ["admin"]))
    as_builder = plugin.run(PluginInput(conf, image(), "/s", ["reader", "builder"]))

    assert as_admin.property_changes == {"hw_scsi_model": "virtio-scsi", "site": "ams1"}
    assert as_builder.property_changes == {}


def test_inject_never_writes_reserved_os_glance_properties(make_conf: MakeConf) -> None:
    conf = make_conf(
        inject_metadata_properties__inject={"os_glance_import_task": "x", "team": "blue"}
    )

    out = plugins.InjectImageMetadata().run(PluginInput(conf, image(), "/s", []))

    assert out.property_changes == {"team": "blue"}


# --- image_conversion ------------------------------------------------------------------------


def convert(
    conf: cfg.ConfigOpts, path: pathlib.Path, disk_format: str, container_format: str = "bare"
) -> PluginOutput:
    return plugins.ImageConversion().run(
        PluginInput(conf, image(disk_format, container_format), str(path), ["member"])
    )


@requires_qemu_img
def test_qcow2_is_converted_to_raw(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "staged"
    original = tmp_path / "original.raw"
    original.write_bytes(pattern(3 * MiB))
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(original), str(source))

    out = convert(make_conf(), source, "qcow2")

    assert out == PluginOutput(
        staged_path=f"{source}.raw",
        image_changes={"disk_format": "raw", "container_format": "bare", "virtual_size": 3 * MiB},
    )
    assert not source.exists()
    assert qemu_info(pathlib.Path(out.staged_path))["format"] == "raw"
    assert pathlib.Path(out.staged_path).read_bytes() == original.read_bytes()


@requires_qemu_img
def test_raw_is_converted_to_qcow2(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "staged"
    source.write_bytes(pattern(2 * MiB + 512))
    kept = tmp_path / "kept.raw"
    kept.write_bytes(source.read_bytes())

    out = convert(make_conf(image_conversion__output_format="qcow2"), source, "raw")

    converted = pathlib.Path(out.staged_path)
    assert converted == tmp_path / "staged.qcow2"
    assert out.image_changes == {
        "disk_format": "qcow2",
        "container_format": "bare",
        "virtual_size": 2 * MiB + 512,
    }
    info = qemu_info(converted)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 2 * MiB + 512)
    assert "backing-filename" not in info
    qemu_img("compare", "-f", "raw", "-F", "qcow2", str(kept), str(converted))
    assert not source.exists()


@requires_qemu_img
def test_vhd_is_read_as_qemu_vpc(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    source = make_image(tmp_path, "staged", "vpc", "2M")

    out = convert(make_conf(image_conversion__output_format="qcow2"), source, "vhd")

    assert out.image_changes["disk_format"] == "qcow2"
    assert (
        out.image_changes["virtual_size"]
        == qemu_info(pathlib.Path(out.staged_path))["virtual-size"]
    )


@requires_qemu_img
def test_conversion_to_vmdk_writes_a_monolithic_sparse_vmdk(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = make_image(tmp_path, "staged", "qcow2", "2M")

    out = convert(make_conf(image_conversion__output_format="vmdk"), source, "qcow2")

    info = qemu_info(pathlib.Path(out.staged_path))
    assert (info["format"], info["virtual-size"]) == ("vmdk", 2 * MiB)
    assert info["format-specific"]["data"]["create-type"] == "monolithicSparse"


@requires_qemu_img
def test_conversion_to_vmdk_follows_a_narrowed_vmdk_allow_list(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = make_image(tmp_path, "staged", "qcow2", "2M")
    conf = make_conf(image_conversion__output_format="vmdk")
    if "vmdk_allowed_types" not in conf.image_format:
        # Glance's [image_format] option; declared by glimpse.config.image_format.
        conf.register_opt(cfg.ListOpt("vmdk_allowed_types"), group="image_format")
    conf.set_override("vmdk_allowed_types", ["streamOptimized"], group="image_format")

    out = convert(conf, source, "qcow2")

    info = qemu_info(pathlib.Path(out.staged_path))
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"


@requires_qemu_img
def test_an_image_already_in_the_output_format_is_left_alone(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = make_image(tmp_path, "staged", "qcow2", "5M")
    before = source.read_bytes()

    out = convert(make_conf(image_conversion__output_format="qcow2"), source, "qcow2")

    assert out == PluginOutput(staged_path=str(source), image_changes={"virtual_size": 5 * MiB})
    assert source.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["staged"]


def test_an_iso_is_not_converted(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    from tests.imports.test_inspection import iso_bytes

    source = tmp_path / "staged"
    source.write_bytes(iso_bytes(blocks=20))

    out = convert(make_conf(), source, "iso")

    assert out == PluginOutput(staged_path=str(source), image_changes={"virtual_size": 20 * 2048})


@requires_qemu_img
def test_a_qcow2_with_a_backing_file_is_refused_before_qemu_img_reads_it(
    make_conf: MakeConf, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_image(tmp_path, "base.qcow2", "qcow2")
    source = make_image(tmp_path, "staged", "qcow2", "1M", "-b", "base.qcow2", "-F", "qcow2")
    ran: list[Any] = []
    monkeypatch.setattr(image_conversion, "_run_qemu_img", lambda *a, **k: ran.append(a))

    with pytest.raises(PluginError, match="backing file"):
        convert(make_conf(), source, "qcow2")

    assert ran == []
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2", "staged"]


@requires_qemu_img
def test_a_qcow2_with_an_external_data_file_is_refused(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = make_image(
        tmp_path, "staged", "qcow2", "1M", "-o", f"data_file={tmp_path / 'staged.data'}"
    )

    with pytest.raises(PluginError, match="external data file"):
        convert(make_conf(), source, "qcow2")


@requires_qemu_img
def test_a_monolithic_flat_vmdk_is_refused(make_conf: MakeConf, tmp_path: pathlib.Path) -> None:
    source = make_image(tmp_path, "staged", "vmdk", "1M", "-o", "subformat=monolithicFlat")

    with pytest.raises(PluginError, match=r"(?i)createType monolithicflat"):
        convert(make_conf(), source, "vmdk")
    assert not (tmp_path / "staged.raw").exists()


@requires_qemu_img
def test_data_that_is_not_its_disk_format_is_refused(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "staged"
    source.write_bytes(pattern(MiB))

    with pytest.raises(PluginError, match="data is raw, but the image's disk_format is qcow2"):
        convert(make_conf(), source, "qcow2")
    assert source.exists()


def test_formats_with_no_inspector_and_containers_are_refused(
    make_conf: MakeConf, tmp_path: pathlib.Path
) -> None:
    source = tmp_path / "staged"
    source.write_bytes(pattern(MiB))

    with pytest.raises(PluginError, match="disk_format ploop cannot be converted"):
        convert(make_conf(), source, "ploop")
    with pytest.raises(PluginError, match="container_format ova cannot be converted"):
        convert(make_conf(), source, "vmdk", "ova")


@requires_qemu_img
def test_a_failed_conversion_leaves_no_partial_output(
    make_conf: MakeConf, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_image(tmp_path, "staged", "qcow2", "1M")
    real = image_conversion._run_qemu_img

    def failing_convert(args: list[str], **kwargs: Any) -> str:
        if args[0] == "convert":
            pathlib.Path(args[-1]).write_bytes(b"partial")
            raise PluginError("Converting the image failed: No space left on device")
        return real(args, **kwargs)

    monkeypatch.setattr(image_conversion, "_run_qemu_img", failing_convert)

    with pytest.raises(PluginError, match="No space left on device"):
        convert(make_conf(), source, "qcow2")

    assert sorted(os.listdir(tmp_path)) == ["staged"]


@requires_qemu_img
def test_qemu_img_runs_under_its_address_space_limit(tmp_path: pathlib.Path) -> None:
    path = make_image(tmp_path, "disk.qcow2", "qcow2")

    with pytest.raises(PluginError, match=r"stopped by its resource limits|failed"):
        image_conversion._run_qemu_img(
            ["info", "--output=json", "-f", "qcow2", str(path)],
            cpu_seconds=5,
            memory_bytes=16 << 20,
            timeout=30,
            what="Reading the image with qemu-img info",
        )
    out = image_conversion._run_qemu_img(
        ["info", "--output=json", "-f", "qcow2", str(path)],
        cpu_seconds=5,
        memory_bytes=1 << 30,
        timeout=30,
        what="Reading the image with qemu-img info",
    )
    assert '"virtual-size": 1048576' in out


@requires_qemu_img
def test_qemu_img_is_killed_after_its_timeout(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)

    with pytest.raises(PluginError, match="took longer than 1 seconds"):
        image_conversion._run_qemu_img(
            ["info", "--output=json", "-f", "raw", str(fifo)],
            cpu_seconds=5,
            memory_bytes=1 << 30,
            timeout=1,
            what="Reading the image with qemu-img info",
        )


def test_a_missing_qemu_img_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(PluginError, match=r"qemu-img is not installed .*qemu-utils"):
        image_conversion._run_qemu_img(
            ["--version"], cpu_seconds=5, memory_bytes=1 << 30, timeout=30, what="Running"
        )


def test_qemu_img_reporting_another_format_is_refused() -> None:
    with pytest.raises(PluginError, match="qemu-img reads the image as raw, not qcow2"):
        image_conversion._check_info({"format": "raw"}, "qcow2", ["monolithicSparse"])
    with pytest.raises(PluginError, match="backing file"):
        image_conversion._check_info({"format": "qcow2", "backing-filename": "base"}, "qcow2", [])
    with pytest.raises(PluginError, match="createType twoGbMaxExtentSparse"):
        image_conversion._check_info(
            {
                "format": "vmdk",
                "format-specific": {"data": {"create-type": "twoGbMaxExtentSparse"}},
            },
            "vmdk",
            ["monolithicSparse", "streamOptimized"],
        )


def test_the_plugin_types_are_plain_data() -> None:
    inp = PluginInput(conf=None, image=image(), staged_path="/s")

    assert inp.roles == []
    assert PluginOutput("/s").image_changes == {} and PluginOutput("/s").property_changes == {}
