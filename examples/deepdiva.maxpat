{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 5,
   "revision": 6,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   80.0,
   80.0,
   1280.0,
   560.0
  ],
  "bglocked": 0,
  "openinpresentation": 0,
  "default_fontsize": 12.0,
  "default_fontface": 0,
  "default_fontname": "Arial",
  "gridonopen": 1,
  "gridsize": [
   15.0,
   15.0
  ],
  "gridsnaponopen": 1,
  "objectsnaponopen": 1,
  "statusbarvisible": 2,
  "toolbarvisible": 1,
  "lefttoolbarpinned": 0,
  "toptoolbarpinned": 0,
  "righttoolbarpinned": 0,
  "bottomtoolbarpinned": 0,
  "toolbars_unpinned_last_save": 0,
  "tallnewobj": 0,
  "boxanimatetime": 200,
  "enablehscroll": 1,
  "enablevscroll": 1,
  "devicewidth": 0.0,
  "description": "deepdiva OSC control",
  "digest": "",
  "tags": "",
  "style": "",
  "subpatcher_template": "",
  "assistshowspatchername": 0,
  "boxes": [
   {
    "box": {
     "id": "obj-title",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      15,
      560,
      20
     ],
     "text": "deepdiva: turn a sound into a Diva preset (start 'deepdiva serve' first; see daemon/OSC.md)"
    }
   },
   {
    "box": {
     "id": "obj-send",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      20,
      420,
      150,
      22
     ],
     "text": "udpsend 127.0.0.1 9000"
    }
   },
   {
    "box": {
     "id": "obj-loadbang",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      50,
      60,
      22
     ],
     "outlettype": [
      "bang"
     ],
     "text": "loadbang"
    }
   },
   {
    "box": {
     "id": "obj-hello",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      80,
      130,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/deepdiva/hello 9002"
    }
   },
   {
    "box": {
     "id": "obj-c-hello",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      155,
      80,
      250,
      20
     ],
     "text": "replies come back on port 9002"
    }
   },
   {
    "box": {
     "id": "obj-b-ping",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      130,
      24,
      24
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-ping",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      50,
      130,
      100,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/deepdiva/ping"
    }
   },
   {
    "box": {
     "id": "obj-b-status",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      170,
      130,
      24,
      24
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-status",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      200,
      130,
      110,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/deepdiva/status"
    }
   },
   {
    "box": {
     "id": "obj-b-push",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      330,
      130,
      24,
      24
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-push",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      360,
      130,
      100,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/deepdiva/push"
    }
   },
   {
    "box": {
     "id": "obj-c-push",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      360,
      155,
      200,
      20
     ],
     "text": "re-send the last params as MIDI CC"
    }
   },
   {
    "box": {
     "id": "obj-b-record",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      190,
      24,
      24
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-record",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      50,
      190,
      130,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "/deepdiva/record 2."
    }
   },
   {
    "box": {
     "id": "obj-c-record",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      185,
      190,
      300,
      20
     ],
     "text": "record 2 s from the daemon's audio input, then match"
    }
   },
   {
    "box": {
     "id": "obj-b-open",
     "maxclass": "button",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      20,
      250,
      24,
      24
     ],
     "outlettype": [
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-open",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      50,
      250,
      110,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "text": "opendialog sound"
    }
   },
   {
    "box": {
     "id": "obj-drop",
     "maxclass": "dropfile",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      200,
      240,
      200,
      40
     ],
     "outlettype": [
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-c-drop",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      205,
      250,
      190,
      20
     ],
     "text": "drop a sound file here"
    }
   },
   {
    "box": {
     "id": "obj-conform",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      50,
      300,
      170,
      22
     ],
     "outlettype": [
      "",
      "int"
     ],
     "text": "conformpath native absolute"
    }
   },
   {
    "box": {
     "id": "obj-prepend",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      50,
      340,
      170,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend /deepdiva/match/file"
    }
   },
   {
    "box": {
     "id": "obj-c-match",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      230,
      340,
      250,
      20
     ],
     "text": "match the file (inside files.allowed_roots)"
    }
   },
   {
    "box": {
     "id": "obj-recv",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600,
      50,
      110,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "udpreceive 9002"
    }
   },
   {
    "box": {
     "id": "obj-route",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 9,
     "patching_rect": [
      600,
      90,
      640,
      22
     ],
     "outlettype": [
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      "",
      ""
     ],
     "text": "route /deepdiva/result /deepdiva/params /deepdiva/error /deepdiva/busy /deepdiva/pong /deepdiva/status /deepdiva/queued /deepdiva/alternative"
    }
   },
   {
    "box": {
     "id": "obj-unpack",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 14,
     "patching_rect": [
      600,
      140,
      230,
      22
     ],
     "outlettype": [
      "",
      "float",
      "",
      "",
      "",
      "int",
      "float",
      "float",
      "",
      "float",
      "int",
      "float",
      "float",
      "float"
     ],
     "text": "unpack s f s s s i f f s f i f f f"
    }
   },
   {
    "box": {
     "id": "obj-set-preset",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600,
      180,
      70,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-preset",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      600,
      215,
      420,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": ""
    }
   },
   {
    "box": {
     "id": "obj-c-preset",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600,
      240,
      300,
      20
     ],
     "text": "last preset (Diva: Rescan Folders to see it)"
    }
   },
   {
    "box": {
     "id": "obj-distance",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      760,
      180,
      80,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-c-distance",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      805,
      180,
      80,
      20
     ],
     "text": "distance"
    }
   },
   {
    "box": {
     "id": "obj-params",
     "maxclass": "multislider",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      600,
      280,
      330,
      120
     ],
     "outlettype": [
      "",
      ""
     ],
     "setminmax": [
      0.0,
      1.0
     ],
     "size": 33,
     "setstyle": 1
    }
   },
   {
    "box": {
     "id": "obj-c-params",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600,
      405,
      330,
      20
     ],
     "text": "normalised parameters (medium33)"
    }
   },
   {
    "box": {
     "id": "obj-set-error",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      950,
      140,
      70,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-error",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      950,
      175,
      300,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": ""
    }
   },
   {
    "box": {
     "id": "obj-c-error",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      950,
      200,
      200,
      20
     ],
     "text": "last error / busy"
    }
   },
   {
    "box": {
     "id": "obj-print",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      1040,
      140,
      110,
      22
     ],
     "text": "print deepdiva"
    }
   },
   {
    "box": {
     "id": "obj-refine",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      20,
      460,
      50,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6,
     "minimum": 0.0
    }
   },
   {
    "box": {
     "id": "obj-c-refine",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      72,
      460,
      60,
      20
     ],
     "text": "refine s"
    }
   },
   {
    "box": {
     "id": "obj-candidates",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      140,
      460,
      40,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "minimum": 1,
     "maximum": 10
    }
   },
   {
    "box": {
     "id": "obj-c-candidates",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      182,
      460,
      300,
      20
     ],
     "text": "candidates (more than 1 needs refine; 0 s = network only)"
    }
   },
   {
    "box": {
     "id": "obj-pak",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      20,
      490,
      60,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "pak 0. 1"
    }
   },
   {
    "box": {
     "id": "obj-append",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      230,
      300,
      60,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "append"
    }
   },
   {
    "box": {
     "id": "obj-set-record",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      100,
      490,
      220,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "set /deepdiva/record 2. $1 $2"
    }
   },
   {
    "box": {
     "id": "obj-set-alt",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      950,
      240,
      70,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-alt",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      950,
      275,
      300,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": ""
    }
   },
   {
    "box": {
     "id": "obj-c-alt",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      950,
      300,
      320,
      20
     ],
     "text": "last runner-up: preset, distance, rank, job"
    }
   },
   {
    "box": {
     "id": "obj-set-note",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      850,
      180,
      70,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-note",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      850,
      215,
      120,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": ""
    }
   },
   {
    "box": {
     "id": "obj-cents",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      980,
      215,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-note-label",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      850,
      155,
      420,
      20
     ],
     "text": "played at (keys: one, or a chord; cents), let go after (s; nan: held), heard as (note, MIDI key)"
    }
   },
   {
    "box": {
     "id": "obj-held",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      1050,
      215,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-take-label",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      950,
      330,
      330,
      20
     ],
     "text": "take: raised (dB), clipped samples restored, hiss (dBFS; nan: none)"
    }
   },
   {
    "box": {
     "id": "obj-raised",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      950,
      355,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-restored",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      1020,
      355,
      70,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-hiss",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      1100,
      355,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-set-heard",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      1120,
      180,
      70,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": "prepend set"
    }
   },
   {
    "box": {
     "id": "obj-heard",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      1120,
      215,
      80,
      22
     ],
     "outlettype": [
      ""
     ],
     "text": ""
    }
   },
   {
    "box": {
     "id": "obj-midi",
     "maxclass": "number",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      1205,
      215,
      45,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-release-label",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      950,
      390,
      330,
      20
     ],
     "text": "let go after the 2 s compared at (s), its release written (s; nan: none)"
    }
   },
   {
    "box": {
     "id": "obj-let-go",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      950,
      415,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   },
   {
    "box": {
     "id": "obj-release",
     "maxclass": "flonum",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      1020,
      415,
      60,
      22
     ],
     "outlettype": [
      "",
      "bang"
     ],
     "format": 6
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "obj-loadbang",
      0
     ],
     "destination": [
      "obj-hello",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-b-ping",
      0
     ],
     "destination": [
      "obj-ping",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-b-status",
      0
     ],
     "destination": [
      "obj-status",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-b-push",
      0
     ],
     "destination": [
      "obj-push",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-b-record",
      0
     ],
     "destination": [
      "obj-record",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-hello",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-ping",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-status",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-push",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-record",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-prepend",
      0
     ],
     "destination": [
      "obj-send",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-b-open",
      0
     ],
     "destination": [
      "obj-open",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-open",
      0
     ],
     "destination": [
      "obj-conform",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-drop",
      0
     ],
     "destination": [
      "obj-conform",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-recv",
      0
     ],
     "destination": [
      "obj-route",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      0
     ],
     "destination": [
      "obj-unpack",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      0
     ],
     "destination": [
      "obj-set-preset",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-preset",
      0
     ],
     "destination": [
      "obj-preset",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      1
     ],
     "destination": [
      "obj-distance",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      2
     ],
     "destination": [
      "obj-print",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      1
     ],
     "destination": [
      "obj-params",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      2
     ],
     "destination": [
      "obj-set-error",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      3
     ],
     "destination": [
      "obj-set-error",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-error",
      0
     ],
     "destination": [
      "obj-error",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      4
     ],
     "destination": [
      "obj-print",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      5
     ],
     "destination": [
      "obj-print",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      6
     ],
     "destination": [
      "obj-print",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      8
     ],
     "destination": [
      "obj-print",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-refine",
      0
     ],
     "destination": [
      "obj-pak",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-candidates",
      0
     ],
     "destination": [
      "obj-pak",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-pak",
      0
     ],
     "destination": [
      "obj-append",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-pak",
      0
     ],
     "destination": [
      "obj-set-record",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-record",
      0
     ],
     "destination": [
      "obj-record",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-conform",
      0
     ],
     "destination": [
      "obj-append",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-append",
      0
     ],
     "destination": [
      "obj-prepend",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-route",
      7
     ],
     "destination": [
      "obj-set-alt",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-alt",
      0
     ],
     "destination": [
      "obj-alt",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      8
     ],
     "destination": [
      "obj-set-note",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-note",
      0
     ],
     "destination": [
      "obj-note",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      6
     ],
     "destination": [
      "obj-cents",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      7
     ],
     "destination": [
      "obj-held",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      9
     ],
     "destination": [
      "obj-raised",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      10
     ],
     "destination": [
      "obj-restored",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      11
     ],
     "destination": [
      "obj-hiss",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      4
     ],
     "destination": [
      "obj-set-heard",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-set-heard",
      0
     ],
     "destination": [
      "obj-heard",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      5
     ],
     "destination": [
      "obj-midi",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      12
     ],
     "destination": [
      "obj-let-go",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-unpack",
      13
     ],
     "destination": [
      "obj-release",
      0
     ]
    }
   }
  ],
  "dependency_cache": [],
  "autosave": 0
 }
}
