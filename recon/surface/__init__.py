"""The ``surface`` method: a Neuralangelo-style neural SDF trained on the capture's photos.

A multi-resolution hash grid (tiny-cuda-nn when it imports, nerfstudio's torch hash encoding
otherwise) feeds a small SDF network whose finer levels are unmasked coarse to fine; gradients
are central differences whose step shrinks with the finest active level; colour is rendered
NeuS-style from the SDF. Eikonal and curvature losses shape the field; LiDAR depth (the SDF is
zero where depth says the surface is) and object masks add losses when the capture has them.
Marching cubes turns the field into mesh.ply in the capture's world frame, in metres.

    presets.py     detail presets, the time estimate and the refusal of runs too long for the device
    scene_data.py  the capture's frames as rays in the unit sphere that the field lives in
    field.py       the hash-grid SDF and colour networks, level masking, numerical gradients
    render.py      NeuS volume rendering with hierarchical sampling
    train.py       the training loop: losses, progress, cancel, checkpoints and resume
    extract.py     marching cubes back into the capture's world frame
    stage.py       the ``surface`` pipeline stage
"""
