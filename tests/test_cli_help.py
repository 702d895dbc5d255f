"""``recserve --help`` tells a user what the service does and where to start."""

import pytest

from app.cli import main


def test_the_top_level_help_describes_the_product_not_the_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # however argparse wrapped it
    assert "recserve demo" in help_text
    assert "recserve build --data DIR" in help_text
    for command in ("generate", "build", "evaluate", "serve", "demo", "consume", "webhooks"):
        assert command in help_text
    assert "app." not in help_text  # no module paths
