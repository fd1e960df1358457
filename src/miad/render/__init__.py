"""Rendering: BlenderProc on pip bpy, in-process. Imports no torch."""
