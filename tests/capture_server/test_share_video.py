"""The share page offers the capture's video (exports/clip.mp4) beside the AR model, served as
video/mp4 with range requests (what Safari's <video> asks for), through the real server."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
from server_test_kit import LiveServer, new_capture
from test_share import make_link, needs_usdz, with_export

from generation.video.encode import write_mp4


class Videos(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "video":
            self.sources.append(dict(attrs).get("src"))


def _videos(html: str) -> list[str | None]:
    parser = Videos()
    parser.feed(html)
    return parser.sources


@needs_usdz
def test_share_page_serves_the_video_with_its_type_and_ranges(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    exports = with_export(live_server.workspace, cid)
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(5)]
    write_mp4(frames, exports / "clip.mp4", 48, 32, 5.0)
    clip = (exports / "clip.mp4").read_bytes()
    assert len(clip) > 300
    link = make_link(live_server, token, cid)
    with live_server.client() as c:  # no token: anyone with the link
        (src,) = _videos(c.get(link["url"]).text)
        assert src == "/s/" + link["url"].rsplit("/", 1)[1] + "/clip.mp4"
        whole = c.get(src)
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.content == clip
        part = c.get(src, headers={"Range": "bytes=100-299"})
        assert part.status_code == 206 and part.content == clip[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{len(clip)}"
        head = c.head(src)
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(clip)


@needs_usdz
def test_no_video_no_player_and_a_404(live_server: LiveServer) -> None:
    token = live_server.token()
    with live_server.client(token) as c:
        cid = new_capture(c)
    with_export(live_server.workspace, cid)
    link = make_link(live_server, token, cid)
    with live_server.client() as c:
        assert _videos(c.get(link["url"]).text) == []
        assert c.get(link["url"] + "/clip.mp4").status_code == 404
