import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.errors import IngestError
from recon.ingest.common import even_subsample
from recon.ingest.geometry import check_pose, opengl_to_opencv, quaternion_to_matrix
from recon.ingest.record3d import intrinsics_from_k
from recon.ingest.strayscanner import rgb_size_for


def test_quaternion_matches_scipy_scalar_last():
    for q in np.random.default_rng(0).normal(size=(20, 4)):
        expected = Rotation.from_quat(q).as_matrix()
        np.testing.assert_allclose(quaternion_to_matrix(*q, where="q"), expected, atol=1e-12)
    with pytest.raises(IngestError) as e:
        quaternion_to_matrix(0, 0, 0, 0, where="odometry.csv: line 7")
    assert e.value.where == "odometry.csv: line 7"


def test_opengl_to_opencv_flips_camera_y_and_z_only():
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    c2w[:3, 3] = [1, 2, 3]
    cv = opengl_to_opencv(c2w)
    np.testing.assert_allclose(cv[:3, 0], c2w[:3, 0])
    np.testing.assert_allclose(cv[:3, 1:3], -c2w[:3, 1:3])
    np.testing.assert_allclose(cv[:3, 3], c2w[:3, 3])


def test_check_pose_rejects_what_is_not_a_rigid_transform():
    shear = np.eye(4)
    shear[0, 1] = 0.5
    for bad in (shear, np.full((4, 4), np.nan), [[1, 0], [0, 1]], "pose"):
        with pytest.raises(IngestError) as e:
            check_pose(bad, "frames[2].transform_matrix")
        assert e.value.where == "frames[2].transform_matrix"
    np.testing.assert_allclose(check_pose(np.eye(4)[:3], "x"), np.eye(4))  # 3x4 is completed


def test_record3d_k_is_read_column_major_or_row_major():
    assert intrinsics_from_k([30, 0, 0, 0, 31, 0, 16, 12, 1]) == (30, 31, 16, 12)
    assert intrinsics_from_k([30, 0, 16, 0, 31, 12, 0, 0, 1]) == (30, 31, 16, 12)


def test_stray_rgb_size_from_principal_point():
    k = np.array([[1352.0, 0, 962.0], [0, 1352.0, 722.9], [0, 0, 1]])
    assert rgb_size_for(k, (256, 192)) == (1920, 1440)
    k_small = np.array([[500.0, 0, 321.0], [0, 500.0, 239.0], [0, 0, 1]])
    assert rgb_size_for(k_small, (256, 192)) == (640, 480)


def test_even_subsample_spreads_and_keeps_the_ends():
    assert even_subsample(5, 10) == [0, 1, 2, 3, 4]
    picked = even_subsample(942, 32)
    assert len(picked) == 32 and picked[0] == 0 and picked[-1] == 941
    assert max(np.diff(picked)) - min(np.diff(picked)) <= 1
    assert even_subsample(10, 1) == [0]
