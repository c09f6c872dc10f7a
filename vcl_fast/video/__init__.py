"""Video input: frames sampled at a fixed rate by timestamp (PyAV; no torch), and a small encoder.

``read_frames`` returns a whole video as a :class:`DecodedFrames`; ``iter_frames`` streams it in chunks.
"""
from vcl_fast.video.decode import iter_frames, probe, read_frames
from vcl_fast.video.encode import write_video
from vcl_fast.video.records import VIDEO_SUFFIXES, DecodedFrames, VideoDamageWarning, VideoDecodeError, VideoInfo

__all__ = ["VIDEO_SUFFIXES", "DecodedFrames", "VideoDamageWarning", "VideoDecodeError", "VideoInfo", "iter_frames", "probe", "read_frames", "write_video"]
