"""The sample configuration is generated from the option definitions, never edited by hand."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sample_config_is_current(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "sample.conf"
    generator = pathlib.Path(sys.executable).with_name("oslo-config-generator")
    subprocess.run(
        [
            str(generator),
            "--config-file",
            "etc/oslo-config-generator/glimpse-api.conf",
            "--output-file",
            str(output),
        ],
        cwd=ROOT,
        check=True,
    )
    committed = (ROOT / "etc" / "glimpse-api.conf.sample").read_text()
    assert output.read_text() == committed, (
        "etc/glimpse-api.conf.sample is stale: run oslo-config-generator --config-file "
        "etc/oslo-config-generator/glimpse-api.conf"
    )


def test_every_option_has_help_text() -> None:
    from glimpse import config

    for group, opts in config.list_opts():
        for opt in opts:
            assert opt.help and len(opt.help) > 10, f"[{group or 'DEFAULT'}] {opt.name}"


def test_glance_option_names_are_read_from_a_glance_config(tmp_path: pathlib.Path) -> None:
    from glimpse import config

    conf_file = tmp_path / "glance-api.conf"
    conf_file.write_text(
        "[DEFAULT]\nbind_host = 127.0.0.2\nbind_port = 9393\nlimit_param_default = 7\n"
        "api_limit_max = 70\nimage_tag_quota = 3\nshow_image_direct_url = true\n"
        "hashing_algorithm = sha256\nowner_is_tenant = false\n"
        "[database]\nconnection = sqlite:////tmp/x.sqlite\n"
        "[glance_store]\nfilesystem_store_datadir = /srv/images\n"
        "[paste_deploy]\nflavor = keystone\n"
    )
    conf = config.new_conf(["--config-file", str(conf_file)])
    assert (conf.bind_host, conf.bind_port) == ("127.0.0.2", 9393)
    assert (conf.limit_param_default, conf.api_limit_max, conf.image_tag_quota) == (7, 70, 3)
    assert conf.show_image_direct_url is True and conf.owner_is_tenant is False
    assert conf.hashing_algorithm == "sha256"
    assert config.database_url(conf) == "sqlite:////tmp/x.sqlite"
    assert config.filesystem_datadir(conf) == "/srv/images"
    assert conf.paste_deploy.flavor == "keystone"
