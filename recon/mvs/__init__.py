"""Dense depth from posed photos on the CPU: plane-sweep stereo, consistency filtering, fusion."""
